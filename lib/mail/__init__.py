"""Outgoing mail: logged by default, SMTP (aiosmtplib) when SMTP_HOST is set.

A transport raises `MailError` when a mail could not be handed over, so a caller (the users
outbox relay) can retry it later.
"""

from lib.mail.transport import LogMailer, Mail, Mailer, MailError, SmtpMailer

__all__ = ["LogMailer", "Mail", "MailError", "Mailer", "SmtpMailer"]
