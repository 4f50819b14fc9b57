"""The one range of rates netsched accepts, enforces and counts: 1 kbit/s to 10 Tbit/s.

The extender refuses a pod whose rate lies outside it, and the CNI plugin refuses to
shape one, so every pod the extender binds is one the plugin can enforce.

- The floor is Kubernetes' own: the kubelet and containerd refuse a bandwidth
  annotation below 1k ("resource is unreasonably small (< 1kbit)"). Below it a token
  bucket also stops being one: at 7 bit/s the rate is not a whole byte per second.
- The ceiling is above every NIC made (a larger value is a typo, not a request) and
  inside what the kernel's token bucket shapes with its 64-bit rates (TCA_TBF_RATE64).
"""

from __future__ import annotations

MIN_RATE_BPS = 1_000
MAX_RATE_BPS = 10**13


def rate_problem(bps: int) -> str | None:
    """Why ``bps`` (bits/s; 0 means "not shaped") is outside the range, or None."""
    if bps == 0 or MIN_RATE_BPS <= bps <= MAX_RATE_BPS:
        return None
    if bps < MIN_RATE_BPS:
        return "is below 1k (1 kbit/s), the least Kubernetes and netsched shape"
    return "exceeds the 10T (10 Tbit/s) limit"
