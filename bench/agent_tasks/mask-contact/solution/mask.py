def mask_email(address):
    if address.count("@") != 1:
        raise ValueError("expected one @")
    local, domain = address.split("@")
    if not local:
        raise ValueError("empty local part")
    masked = "*" * len(local) if len(local) <= 2 else local[0] + "*" * (len(local) - 2) + local[-1]
    return f"{masked}@{domain}"


def mask_phone(number):
    digits = sum(c.isdigit() for c in number)
    if digits < 4:
        raise ValueError("fewer than four digits")
    out = []
    seen = 0
    for c in number:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - 4 else "*")
        else:
            out.append(c)
    return "".join(out)
