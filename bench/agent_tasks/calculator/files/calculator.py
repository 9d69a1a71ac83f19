def calculate(expression):
    pass
