"""Bodies of the passkey routes (services/users/passkeys.py, ADR 0053). A credential is
what the browser's `PublicKeyCredential.toJSON()` gives (WebAuthn Level 3), as it is."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, RootModel

from lib.http.fields import single_line
from services.users.auth_schemas import Strict

Credential = Annotated[
    dict[str, Any],
    Field(description="The PublicKeyCredential's toJSON() (id, rawId, type, response)."),
]


class CeremonyOut(BaseModel):
    """Options for navigator.credentials.create() or .get(), as JSON (WebAuthn Level 3:
    PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON)."""

    public_key: dict[str, Any] = Field(
        description="The options; their challenge is single use and short-lived."
    )


class PasskeyIn(Strict):
    credential: Credential
    name: Annotated[str, single_line(100)] = Field(
        "Passkey", description='A name of the owner\'s choosing ("Laptop").'
    )


class PasskeySignInIn(Strict):
    credential: Credential


class PasskeyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="The last sign-in with it; null: none.")


class PasskeyList(RootModel[list[PasskeyOut]]):
    """The user's passkeys, oldest first."""
