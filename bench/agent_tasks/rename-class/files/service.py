from models import Acct


def open_account(owner):
    return Acct(owner, 100)


def deposit(acct: Acct, amount):
    acct.balance += amount
    return acct
