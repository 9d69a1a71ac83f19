def totals(text):
    pass
