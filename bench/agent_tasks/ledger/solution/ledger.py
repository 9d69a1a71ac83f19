def totals(text):
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) != 2:
            raise ValueError(f"line {number}: expected name,amount")
        name, amount = fields[0].strip(), fields[1].strip()
        try:
            value = float(amount)
        except ValueError:
            raise ValueError(f"line {number}: bad amount") from None
        sums[name] = sums.get(name, 0.0) + value
    return {name: round(total, 2) for name, total in sums.items()}
