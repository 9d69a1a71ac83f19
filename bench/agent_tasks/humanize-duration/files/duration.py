def humanize(seconds):
    pass


def parse(text):
    pass
