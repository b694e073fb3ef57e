"""Bodies of the second-factor routes (services/users/totp.py, ADR 0054)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints, model_validator

from lib.http.fields import omit_default
from services.users.auth_schemas import Code, Secret, Strict

RecoveryCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z2-7]{4}(-?[A-Za-z2-7]{4}){4,5}$"
    ),
    Field(description="One of the recovery codes shown at enrolment (each works once)."),
]


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32, for an app that cannot scan the QR code.")
    otpauth_uri: str = Field(description="otpauth://totp/… (the QR code's content).")
    qr_svg: str = Field(description="The otpauth URI as a QR code, an SVG document.")
    recovery_codes: list[str] = Field(
        description="Shown this once; each signs in once instead of a code (stored hashed)."
    )


class CodeIn(Strict):
    code: Code


class ChallengeIn(Strict):
    challenge: Secret = Field(description="The `challenge` of the login's problem.")


class SecondFactorIn(Strict):
    challenge: Secret = Field(description="The `challenge` of the login's problem.")
    code: Code | None = Field(None, json_schema_extra=omit_default)
    recovery_code: RecoveryCode | None = Field(None, json_schema_extra=omit_default)

    @model_validator(mode="after")
    def one_of_them(self) -> SecondFactorIn:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("give a code or a recovery_code, one of them")
        return self


class SecondFactorOut(BaseModel):
    totp: bool = Field(description="An authenticator app is enrolled (and confirmed).")
    recovery_codes_left: int
    required: bool = Field(description="The account's role must sign in with one.")
