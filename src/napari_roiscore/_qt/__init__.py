"""Thin Qt/magicgui widgets over the pure core (this is the only place Qt is used)."""
