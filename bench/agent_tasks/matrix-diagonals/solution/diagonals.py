def _check_square(matrix):
    if any(len(row) != len(matrix) for row in matrix):
        raise ValueError("matrix is not square")


def diagonal_sums(matrix):
    _check_square(matrix)
    n = len(matrix)
    return sum(matrix[i][i] for i in range(n)), sum(matrix[i][n - 1 - i] for i in range(n))


def is_magic(matrix):
    main, anti = diagonal_sums(matrix)
    sums = {main, anti}
    sums.update(sum(row) for row in matrix)
    sums.update(sum(col) for col in zip(*matrix, strict=True))
    return len(sums) == 1
