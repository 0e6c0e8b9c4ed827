"""Guarded offboarding: queued suspend/delete/reactivate through SCIM, exactly once."""
