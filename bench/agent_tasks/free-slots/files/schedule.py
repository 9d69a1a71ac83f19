def free_slots(busy, start="09:00", end="17:00"):
    pass
