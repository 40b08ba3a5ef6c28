print("terraseg-bench: not implemented yet")
