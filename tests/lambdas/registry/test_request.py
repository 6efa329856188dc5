"""The register step's event, checked (lambdas/registry/request.py); bad inputs through the
whole step are in tests/lambdas/test_register_checkpoint.py."""

from __future__ import annotations

import pytest

from lambdas.registry import RegistrationRequest


def test_an_event_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a JSON object, got str"):
        RegistrationRequest.from_event("job-1")  # type: ignore[arg-type]
