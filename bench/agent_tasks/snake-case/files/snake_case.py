def to_snake(name):
    pass
