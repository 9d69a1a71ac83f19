def wrap(text, width):
    pass
