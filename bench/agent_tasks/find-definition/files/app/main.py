from app.loader import parse_config

print(parse_config('x'))
