def ordinal(n):
    pass


def parse_ordinal(text):
    pass
