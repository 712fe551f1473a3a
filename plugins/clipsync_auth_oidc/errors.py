"""The two ways a single sign-on fails, each shown on an error page with its reason.

Either way nothing was created or changed, and the person can start again from the
sign-in page.
"""

from __future__ import annotations

from clipsync.errors import ClipSyncError, ServiceUnavailable


class SignInRefused(ClipSyncError):
    """The answer cannot be trusted or used: wrong state, nonce, issuer, audience,
    signature, an expired id_token, an error from the provider, a claim with no mapping."""

    status = 403
    code = "sign_in_refused"
    default_message = "Single sign-on did not work. Please try again."


class ProviderTrouble(ServiceUnavailable):
    """The provider answered wrongly or not at all (its fault, or the network's): 503,
    logged as one line, like any service ClipSync needs that does not answer."""

    code = "sign_in_service_unavailable"
    default_message = "The sign-in service did not answer as expected. Please try again."
