def parse_query(qs):
    pass


def build_query(params):
    pass
