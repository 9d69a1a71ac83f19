def parse_config(text):
    return dict(line.split('=') for line in text.splitlines())
