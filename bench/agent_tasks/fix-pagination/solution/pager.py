def page(items, number, per_page=10):
    """Items on page `number` (pages count from 1)."""
    start = (number - 1) * per_page
    return items[start:start + per_page]


def page_count(items, per_page=10):
    return (len(items) + per_page - 1) // per_page
