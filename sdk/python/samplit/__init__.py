"""Samplit SDK for Python (standard library only, Python >= 3.9).

    from samplit import Samplit

    with Samplit("http://127.0.0.1:8080", "sk_...") as s:
        a = s.assign("checkout-button", "user-123")    # a.variant, a.payload, a.source
        s.track("checkout-button", "user-123", idempotency_key="order-789")

See README.md for the rules: it never raises on server trouble, it caches
assignments, and a background thread sends events in idempotent batches.
"""

from ._client import Assignment, Default, Reason, Samplit, Source

__all__ = ["Assignment", "Default", "Reason", "Samplit", "Source"]
__version__ = "0.1.0"
