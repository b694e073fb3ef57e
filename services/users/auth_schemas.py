"""Bodies of the /v1/auth routes (registration.py, sessions.py, passwords.py, reauth.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lib.auth.principal import Role
from lib.http.fields import omit_default, single_line

# argon2 takes any length, but bcrypt-era clients cap at 72 bytes; docs/api.md says 8..72
Password = Annotated[str, StringConstraints(min_length=8, max_length=72)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
    ),
]
# an opaque secret we issued: url-safe base64 of 32 bytes (43 characters)
Secret = Annotated[
    str, StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
]
Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$"),
    Field(description="The 6 digits the authenticator app shows now."),
]
PersonalId = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9-]{4,32}$")
]

# set by the service, never by the caller (403)
READ_ONLY = frozenset({"id", "verified", "version", "created_at", "department_id", "points"})


# a request body: a field it does not declare is a 400
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    email: Email
    password: Password
    first_name: Annotated[str, single_line(100)]
    last_name: Annotated[str, single_line(100)]
    phone_number: Annotated[str, single_line(32, min_length=3)]
    role: Role = Field(description="CUSTOMER or PROVIDER (MODERATOR and ADMIN: 403).")
    personal_id_number: PersonalId | None = Field(
        None,
        json_schema_extra=omit_default,
        description="PROVIDER only, required for one. Stored encrypted; never returned.",
    )


class EmailIn(Strict):
    email: Email


class LoginIn(Strict):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=72)]


class TokenIn(Strict):
    token: Secret


class RefreshIn(Strict):
    refresh_token: Secret | None = Field(
        None, json_schema_extra=omit_default, description="Else the fixup_refresh cookie."
    )


class ReauthIn(Strict):
    """One proof of who the caller is: the password, a code of the authenticator app, or
    a passkey's assertion."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1}
    )
    password: Annotated[str, StringConstraints(min_length=1, max_length=72)] | None = Field(
        None, json_schema_extra=omit_default
    )
    code: Code | None = Field(
        None, json_schema_extra=omit_default, description="For an account with the app."
    )
    credential: dict[str, Any] | None = Field(
        None,
        json_schema_extra=omit_default,
        description="The PublicKeyCredential's toJSON() (id, rawId, type, response) for "
        "the options of POST /v1/auth/passkey/options: one of the account's passkeys.",
    )

    @model_validator(mode="after")
    def one_of_them(self) -> ReauthIn:
        given = [self.password, self.code, self.credential]
        if sum(each is not None for each in given) != 1:
            raise ValueError("give a password, a code or a credential, one of them")
        return self


class ResetConfirmIn(Strict):
    token: Secret
    new_password: Password


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the access token expires.")


class RevocationOut(BaseModel):
    """The revocation record of the token's own account (ADR 0010)."""

    user_id: uuid.UUID
    not_before_ms: int = Field(
        description="Tokens of the account with iat before this (Unix ms) are void; 0: none."
    )
