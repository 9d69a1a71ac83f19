import argparse


def main():
    parser = argparse.ArgumentParser(description="Print the numbers of a file, largest first.")
    parser.add_argument("path")
    args = parser.parse_args()
    with open(args.path) as f:
        numbers = [int(line) for line in f if line.strip()]
    for n in sorted(numbers, reverse=True):
        print(n)


if __name__ == "__main__":
    main()
