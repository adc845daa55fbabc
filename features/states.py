"""US states' primary time zones: local calling hours and contact timestamps follow them."""

from __future__ import annotations

STATE_TZ: dict[str, str] = {
    **dict.fromkeys(
        ["CT", "DC", "DE", "FL", "GA", "IN", "KY", "MA", "MD", "ME", "MI", "NC", "NH", "NJ"],
        "America/New_York",
    ),
    **dict.fromkeys(["NY", "OH", "PA", "RI", "SC", "VA", "VT", "WV"], "America/New_York"),
    **dict.fromkeys(
        ["AL", "AR", "IA", "IL", "KS", "LA", "MN", "MO", "MS", "ND", "NE", "OK", "SD", "TN"],
        "America/Chicago",
    ),
    **dict.fromkeys(["TX", "WI"], "America/Chicago"),
    **dict.fromkeys(["CO", "ID", "MT", "NM", "UT", "WY"], "America/Denver"),
    "AZ": "America/Phoenix",
    **dict.fromkeys(["CA", "NV", "OR", "WA"], "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
}
