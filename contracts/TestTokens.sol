// SPDX-License-Identifier: MIT
// Test ERC-20 tokens for the EVM family: the tests and `gateway demo --coin USDC` compile
// them with solcjs at run time (no build output is kept).
pragma solidity ^0.8.20;

// A standard token: transfer returns bool. The whole supply goes to the deployer, so a
// supply of 2**256-1 lets a test pay that amount.
contract BoolToken {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }
}

// Pays ETH on by an internal call: found only by a follower that traces blocks.
contract Forwarder {
    function pay(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "forward");
    }
}

// Sends ETH on by an internal call, then reverts: the ETH goes back with the revert.
contract PayThenRevert {
    function pay(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "forward");
        revert("undone");
    }
}

// Calls PayThenRevert and swallows its failure, so the transaction itself succeeds while
// the inner transfer to `to` was rolled back (a trace shows that transfer without error).
contract SwallowRevert {
    function attempt(address payer, address payable to) external payable {
        (bool ok, ) = payer.call{value: msg.value}(abi.encodeWithSignature("pay(address)", to));
        require(!ok, "expected the inner call to revert");
    }
}

// Like USDT on mainnet: transfer returns nothing.
contract NoBoolToken {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_, uint256 supply) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        totalSupply = supply;
        balanceOf[msg.sender] = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    function transfer(address to, uint256 value) external {
        require(balanceOf[msg.sender] >= value, "balance");
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
    }
}
