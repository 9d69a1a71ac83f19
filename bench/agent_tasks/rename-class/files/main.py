from service import deposit, open_account

acct = open_account("alice")
deposit(acct, 50)
print(f"{acct.owner}: {acct.balance}")
