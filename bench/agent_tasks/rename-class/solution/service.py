from models import Account


def open_account(owner):
    return Account(owner, 100)


def deposit(account: Account, amount):
    account.balance += amount
    return account
