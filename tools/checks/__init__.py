"""Checks of the suite itself: mutation testing (mutmut, its scores and its decorated
functions), the mutants' databases, the upgrade drill, the suite from a closed checkout,
the OpenAPI linters.

make targets: mutate, mutate-sample, upgrade-check, test-closed-checkout, api-lint.
"""
