import re


def slugify(title):
    """A URL slug: lower case words of letters and digits joined by single hyphens."""
    return "-".join(re.findall(r"[a-z0-9]+", title.lower()))
