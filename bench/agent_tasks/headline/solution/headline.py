MINOR = {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to"}


def headline(text):
    words = text.split()
    result = []
    for i, word in enumerate(words):
        if 0 < i < len(words) - 1 and word.lower() in MINOR:
            result.append(word.lower())
        else:
            result.append("-".join(part.capitalize() for part in word.split("-")))
    return " ".join(result)
