"""Targets, firmware builds, emulated and real boards, and the serial link to them."""
