def unique(items):
    """The items without repeats, each at the place it first appeared."""
    return list(dict.fromkeys(items))
