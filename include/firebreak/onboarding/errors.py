"""Onboarding's error: bad input named, nothing written."""

from __future__ import annotations

from firebreak.errors import FirebreakError


class OnboardingError(FirebreakError):
    """Onboarding (or an import) cannot proceed with the input as given; nothing was written."""
