def to_fahrenheit(celsius):
    pass


def to_celsius(fahrenheit):
    pass
