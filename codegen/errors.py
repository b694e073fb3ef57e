class CodegenError(Exception):
    """A problem in the user's SQL or options; printed as one line, exit status 1."""
