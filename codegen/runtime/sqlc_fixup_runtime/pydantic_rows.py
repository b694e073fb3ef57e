"""What code generated with `model_type: pydantic` imports: the base of its models, in a
module of its own so that a project without pydantic never imports it.

Rows are built by keyword, validated: pydantic's unvalidated `model_construct` costs about
twice as much per row (measured), so there is no cheaper read path.
"""

from __future__ import annotations

from typing import TypeAlias

import pydantic


class PydanticRow(pydantic.BaseModel):
    # asyncpg's Range, Point, BitString and overridden types have no pydantic schema
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)


# sqlc_fixup_runtime.JSON's shape as pydantic's named recursive alias: pydantic cannot
# build a schema from an implicit recursive alias (`X = list["X"]`)
JSON: TypeAlias = pydantic.JsonValue
