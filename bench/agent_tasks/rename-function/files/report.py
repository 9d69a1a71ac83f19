from users import get_usr


def greeting(user_id):
    return f"Hello, {get_usr(user_id)}!"
