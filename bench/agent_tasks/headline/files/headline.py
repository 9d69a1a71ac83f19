def headline(text):
    pass
