def slugify(title):
    """A URL slug: lower case words of letters and digits joined by single hyphens."""
    return title.lower().replace(" ", "-")
