"""The data export's document (services/users/export.py, ADR 0059): a section per service,
in each a field per table that names the person (the table's name), never a secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.users.db.models import EmailTokenPurpose
from services.users.passkey_schemas import PasskeyOut
from services.users.schemas import UserOut


class ProviderDetailsOut(BaseModel):
    personal_id_last4: str = Field(description="The personal id number stays sealed.")
    created_at: datetime


class SessionOut(BaseModel):
    """A session (refresh family), ended ones too; never a token or its hash."""

    id: uuid.UUID
    created_at: datetime
    authenticated_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None
    user_agent: str | None
    address: str | None = Field(description="Coarse: IPv4 /24, IPv6 /48.")


class EmailTokenOut(BaseModel):
    """A verification or password-reset link sent: when and for what, never the token."""

    id: uuid.UUID
    purpose: EmailTokenPurpose
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


class TotpOut(BaseModel):
    enrolled: bool = Field(description="An authenticator app is set up; its secret is not shown.")
    confirmed_at: datetime | None


class RecoveryCodesOut(BaseModel):
    left: int = Field(description="Recovery codes not used yet; the codes are not shown.")


class RevocationOut(BaseModel):
    not_before: datetime = Field(description="The account's tokens issued before are void.")


class UsersSection(BaseModel):
    users: UserOut = Field(description="The profile; picture_url is a signed, expiring link.")
    provider_details: ProviderDetailsOut | None
    refresh_token_families: list[SessionOut]
    passkeys: list[PasskeyOut]
    totp_factors: TotpOut
    recovery_codes: RecoveryCodesOut
    email_tokens: list[EmailTokenOut]
    token_revocations: RevocationOut | None


class BalanceOut(BaseModel):
    points: int
    updated_at: datetime | None


class LedgerEntryOut(BaseModel):
    id: int
    delta: int
    reason: str
    balance_after: int
    created_at: datetime
    idempotency_key: str


class PointsSection(BaseModel):
    user_points: BalanceOut
    points_ledger: list[LedgerEntryOut]


Rows = dict[str, list[dict[str, Any]]]


class ExportOut(BaseModel):
    """Everything every service holds about the person; a section per service."""

    user_id: uuid.UUID
    exported_at: datetime
    users: UsersSection
    orders: Rows = Field(description="orders' GET /v1/users/{id}/export: a list per table.")
    chat: Rows = Field(description="chat's GET /v1/users/{id}/export: a list per table.")
    catalog: Rows = Field(description="catalog's GET /v1/users/{id}/export: a list per table.")
    points: PointsSection
