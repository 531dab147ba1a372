"""The generator's error types, in a leaf module so that every part of it can raise them."""


class CGenError(ValueError):
    """The model cannot be turned into C (a structural problem, not an unsupported operator)."""


class UnsupportedOperatorError(CGenError):
    """An operator, operator option or tensor type the C generator has no kernel for."""
