"""Outbound notifications: each email or webhook POST handed to a job, and its fate."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class DeliveryStatus(StrEnum):
    # Waiting for its job (or for its retry).
    PENDING = "pending"
    # Waiting for the person's next digest email (see [notifications] digest_minutes).
    BATCHED = "batched"
    SENT = "sent"
    # Every attempt failed; `last_error` says why. Never retried again.
    FAILED = "failed"


class Delivery(Model):
    """One message for a channel that reaches outside (email, webhook).

    The row is written in the process that published the event, before the job that
    sends it is queued; the job sends only a row still PENDING (or BATCHED, for a
    digest) and marks it SENT, so a retried or repeated job never sends twice.
    """

    id = fields.IntField(primary_key=True)
    # The notifier's name: "email", "webhook".
    channel = fields.CharField(max_length=32)
    # The notification type (`video.ready`) or, for webhooks, the event name.
    type = fields.CharField(max_length=64)
    # Who it goes to: an email address, or a webhook's URL (for display).
    recipient = fields.CharField(max_length=2048)
    # The person it is for, when it is for one (an invite goes to an address only).
    user = fields.ForeignKeyField(
        "models.User", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    webhook = fields.ForeignKeyField(
        "models.Webhook", related_name="deliveries", null=True, on_delete=fields.CASCADE
    )
    # What the job needs to send it: the message's fields or the event's JSON.
    payload = fields.JSONField(default=dict)
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(default="")
    # The HTTP status a webhook answered with, last time.
    response_status = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_attempt_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deliveries"
        indexes = (("channel", "status"), ("webhook_id", "created_at"), ("user_id", "status"))
