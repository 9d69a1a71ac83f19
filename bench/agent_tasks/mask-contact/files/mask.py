def mask_email(address):
    pass


def mask_phone(number):
    pass
