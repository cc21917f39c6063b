"""Hostile and unlucky input, one file per area: what is refused, what is kept, and the one line the user sees."""
