import re
from fractions import Fraction

TOKEN = re.compile(r"\s*(?:(\d+)|(.))")


def _tokens(expression):
    tokens = []
    for number, other in TOKEN.findall(expression):
        if number:
            tokens.append(int(number))
        elif other.strip():
            if other not in "+-*/()":
                raise ValueError(f"unexpected {other!r}")
            tokens.append(other)
    return tokens


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self):
        token = self.peek()
        if token is None:
            raise ValueError("unexpected end")
        self.pos += 1
        return token

    def expression(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            value = value + self.term() if self.take() == "+" else value - self.term()
        return value

    def term(self):
        value = self.factor()
        while self.peek() in ("*", "/"):
            if self.take() == "*":
                value *= self.factor()
            else:
                divisor = self.factor()
                if divisor == 0:
                    raise ZeroDivisionError("division by zero")
                value /= divisor
        return value

    def factor(self):
        token = self.take()
        if token == "-":
            return -self.factor()
        if token == "(":
            value = self.expression()
            if self.take() != ")":
                raise ValueError("missing )")
            return value
        if isinstance(token, int):
            return Fraction(token)
        raise ValueError(f"unexpected {token!r}")


def calculate(expression):
    parser = _Parser(_tokens(expression))
    value = parser.expression()
    if parser.peek() is not None:
        raise ValueError("unexpected trailing input")
    return int(value) if value.denominator == 1 else float(value)
