"""sqlnb"""
