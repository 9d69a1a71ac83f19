def unique(items):
    """The items without repeats, each at the place it first appeared."""
    return list(set(items))
