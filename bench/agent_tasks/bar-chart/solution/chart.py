def bar_chart(counts, width=20):
    if not counts:
        return ""
    largest = max(counts.values())
    pad = max(len(label) for label in counts)
    lines = []
    for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        size = (2 * count * width + largest) // (2 * largest) if largest else 0
        lines.append(f"{label.ljust(pad)} | {'#' * size} {count}")
    return "\n".join(lines)
