from shapes import compute_area

print(compute_area(3, 4))
