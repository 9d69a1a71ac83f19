def compute_area(w, h):
    return w * h
