from users import get_user


def greeting(user_id):
    return f"Hello, {get_user(user_id)}!"
