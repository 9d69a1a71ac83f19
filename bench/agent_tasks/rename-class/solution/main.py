from service import deposit, open_account

account = open_account("alice")
deposit(account, 50)
print(f"{account.owner}: {account.balance}")
